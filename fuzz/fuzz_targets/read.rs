//! `edxml::read` (parse + `read_tree`): any input gives a package or a coded error. A package
//! the writer accepts reads back, with no kind of warning the first read did not have, to one
//! that writes the same bytes (the writer's output is a fixed point of read-then-write); the
//! strict reader accepts nothing the lenient one refuses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lienthong::edxml::{ReadOptions, read, write};

fuzz_target!(|data: &[u8]| {
    let lenient = ReadOptions::default();
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    let read_lenient = read(data, &lenient);
    let read_strict = read(data, &strict);
    if read_strict.is_ok() {
        assert!(
            read_lenient.is_ok(),
            "strict read accepted what lenient read refused: {:?}",
            read_lenient.err()
        );
    }
    let Ok(pkg) = read_lenient else { return };
    let _ = pkg.summary();
    let Ok(written) = write(&pkg) else { return };
    let again = match read(&written, &lenient) {
        Ok(p) => p,
        Err(e) => panic!(
            "the writer's output does not read back: {e}\n{}",
            String::from_utf8_lossy(&written)
        ),
    };
    // The writer passes on what the lenient reader tolerated (a non-standard agency code reads
    // back with the same warning) but adds no problem of its own.
    for w in again.warnings() {
        assert!(
            pkg.warnings().iter().any(|v| v.kind == w.kind),
            "the writer's output reads with a new warning: {w:?}"
        );
    }
    let rewritten = write(&again).expect("a package read from the writer's output writes again");
    if rewritten != written {
        panic!(
            "write(read(write(p))) != write(p)\n--- first\n{}\n--- second\n{}",
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&rewritten)
        );
    }
});
