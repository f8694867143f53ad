//! The edXML format (QCVN 102:2016/BTTTT): agency codes, the package model, reader and writer.
//! Pure: no I/O beyond the byte slices it is handed.

pub mod xml;

/// The QCVN 102 namespace every edXML element lives in (the signature excepted).
pub const NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
