//! Trust in signers: anchors, path validation, the signing-certificate profile.
