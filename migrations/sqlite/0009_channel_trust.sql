-- A received package whose XML signature was absent or a placeholder (no certificate that
-- parses: what SDK-built traffic and the national platform's own carry), accepted because it came
-- over the mutual-TLS connection of a peer configured with `xml_signature = "channel"`
-- (node/ingest.rs): `channel` is that peer's configured name, `channel_signature` what the XML
-- signature was. Both NULL for a package whose signature was verified, or that this node signed.
ALTER TABLE messages ADD COLUMN channel TEXT;
ALTER TABLE messages ADD COLUMN channel_signature TEXT
    CHECK ((channel IS NULL) = (channel_signature IS NULL)
           AND (channel_signature IS NULL OR channel_signature IN ('absent', 'placeholder')));
