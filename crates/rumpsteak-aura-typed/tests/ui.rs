//! Breaking the protocol does not compile. Every case of `tests/ui/` runs
//! in this one trybuild run, so that they are built together; each checks
//! in the compiler's message as `<case>.stderr`.

#[test]
fn breaking_the_protocol_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
