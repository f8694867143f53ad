//! The attachment decoder (`edxml::attachment::decode`: base64, then at most one zip entry under
//! per-file, total and ratio caps). Input: a flag byte, then the `ContentTransferEncoded` text.
//! Whatever decodes stays within the caps; and the same bytes, taken as a file, survive the
//! writer's encoding (zipped and plain) and decode back unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lienthong::edxml::attachment::{
    Budget, Transfer, ZIP_MAGIC, append_base64, append_zipped_base64, decode,
};
use lienthong::edxml::xml::Limits;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    // Caps a fuzzer can reach (a zip bomb needs no more than a few hundred bytes to pass them).
    let limits = Limits {
        max_attachment_bytes: 256 * 1024,
        max_total_attachment_bytes: 384 * 1024,
        max_zip_ratio: 20,
        ..Limits::default()
    };
    let zip_based = flags & 1 == 1;
    if let Ok(text) = std::str::from_utf8(rest) {
        let mut budget = Budget::default();
        if let Ok(d) = decode(text, zip_based, &limits, &mut budget, "a") {
            assert!(d.data.len() as u64 <= limits.max_attachment_bytes);
            if d.transfer == Transfer::Plain {
                assert!(!d.data.starts_with(ZIP_MAGIC));
            }
            // A second attachment counts against what the first left of the total.
            let mut second = Budget::default();
            let _ = decode(text, zip_based, &limits, &mut second, "b");
            let _ = decode(text, zip_based, &limits, &mut budget, "b");
        }
    }
    // The writer's side: `rest` as a file.
    let limits = Limits::default();
    let mut text = Vec::new();
    append_zipped_base64("tệp đính kèm.pdf", rest, &mut text).expect("a small file zips");
    let text = String::from_utf8(text).expect("base64 is ASCII");
    // (A zip-based manifest type keeps a one-file zip of a non-zip as it is: ZipAsIs.)
    let d = decode(&text, false, &limits, &mut Budget::default(), "zipped")
        .expect("what the writer zips decodes");
    assert_eq!(d.transfer, Transfer::Zipped);
    assert!(d.data == rest, "zipped round trip changed the file");
    if !rest.starts_with(ZIP_MAGIC) {
        let mut text = Vec::new();
        append_base64(rest, &mut text);
        let text = String::from_utf8(text).expect("base64 is ASCII");
        let d = decode(&text, false, &limits, &mut Budget::default(), "plain")
            .expect("plain base64 decodes");
        assert!(d.data == rest, "plain round trip changed the file");
    }
});
