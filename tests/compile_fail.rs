//! The errors a user gets for handler mistakes (trybuild; the expected output is in
//! `tests/ui/*.stderr`, regenerate with `TRYBUILD=overwrite`).

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
