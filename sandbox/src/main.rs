//! The `kiln-sandbox` binary.
#![forbid(unsafe_code)]

fn main() {}
