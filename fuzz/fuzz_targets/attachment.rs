//! The attachment decoder (`edxml::attachment::decode`: base64, then what the content is — a
//! one-file wrapper unzipped, a zip that is the file kept, plain bytes — under per-file, total
//! and ratio caps). Input: a flag byte (which name and labels the package gives), then the
//! `ContentTransferEncoded` text. Whatever decodes stays within the caps; and the same bytes,
//! taken as a file, survive the writer's encoding (a `<uuid>.<ext>` wrapper, or plain) and decode
//! back unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lienthong::edxml::attachment::{
    Budget, Labels, Transfer, ZIP_CONTENT_TYPE, ZIP_MAGIC, append_base64, append_zipped_base64,
    decode, entry_name,
};
use lienthong::edxml::xml::Limits;

const NAMES: [&str; 4] = ["công văn.pdf", "hồ sơ.zip", "HỒ SƠ.ZIP", "báo cáo.docx"];

fn labels(name: &str, zip_label: bool) -> Labels<'_> {
    Labels {
        name,
        manifest_type: None,
        label: zip_label.then_some(ZIP_CONTENT_TYPE),
        manifest_path: "Reference[1]/ContentType",
        label_path: "Attachment[1]/ContentType",
    }
}

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
    let name = NAMES[usize::from(flags & 3)];
    let l = labels(name, flags & 4 == 4);
    if let Ok(text) = std::str::from_utf8(rest) {
        let mut budget = Budget::default();
        if let Ok(d) = decode(text, &l, &limits, &mut budget, "a") {
            assert!(d.data.len() as u64 <= limits.max_attachment_bytes);
            if d.transfer == Transfer::Plain {
                assert!(!d.data.starts_with(ZIP_MAGIC));
            }
            // A second attachment counts against what the first left of the total.
            let mut second = Budget::default();
            let _ = decode(text, &l, &limits, &mut second, "b");
            let _ = decode(text, &l, &limits, &mut budget, "b");
        }
    }
    // The writer's side: `rest` as a file named `name`, wrapped under a neutral entry name as
    // the writer does for every name but an exact `.zip` (sent as it is, and read as it is
    // unless it looks like an older writer's zip-in-zip: no round trip is promised for those).
    let limits = Limits::default();
    let mut text = Vec::new();
    append_zipped_base64(&entry_name("seed", name), rest, &mut text).expect("a small file zips");
    let text = String::from_utf8(text).expect("base64 is ASCII");
    let d = decode(
        &text,
        &labels(name, true),
        &limits,
        &mut Budget::default(),
        "zipped",
    )
    .expect("what the writer zips decodes");
    if !name.ends_with(".zip") {
        assert_eq!(d.transfer, Transfer::Zipped, "{name}");
        assert!(d.data == rest, "zipped round trip changed {name}");
    }
    if !rest.starts_with(ZIP_MAGIC) {
        let mut text = Vec::new();
        append_base64(rest, &mut text);
        let text = String::from_utf8(text).expect("base64 is ASCII");
        let d = decode(
            &text,
            &labels(name, false),
            &limits,
            &mut Budget::default(),
            "plain",
        )
        .expect("plain base64 decodes");
        assert!(d.data == rest, "plain round trip changed {name}");
    }
});
