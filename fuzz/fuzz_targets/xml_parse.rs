//! `edxml::xml::parse`: the only place outside bytes become a tree. Any input must give a tree
//! or a coded error, never a panic; a tree's text is the input less the dropped prefix.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lienthong::edxml::xml::{Limits, parse};

/// Caps small enough for a fuzzer to reach: the depth, node, attribute and namespace limits are
/// refusals that must hold too, not only the defaults' happy path.
fn small() -> Limits {
    Limits {
        max_package_bytes: 64 * 1024,
        max_depth: 8,
        max_nodes: 200,
        max_attributes: 4,
        max_namespace_declarations: 4,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    for limits in [Limits::default(), small()] {
        if let Ok(xml) = parse(data, &limits) {
            assert_eq!(
                &data[xml.offset..],
                xml.text.as_bytes(),
                "the tree's text is the input less its first `offset` bytes"
            );
            assert!(xml.doc.descendants().count() <= limits.max_nodes as usize + 1);
        }
    }
});
