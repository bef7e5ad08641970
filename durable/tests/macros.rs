//! Compile-time behaviour of `#[durable::workflow]` and `#[durable::activity]`: what they
//! accept, and the errors (with their spans) for what they reject.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
