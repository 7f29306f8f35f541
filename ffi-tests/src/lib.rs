//! Cross-language tests of the provider ABI; everything lives in `tests/`
//! and the C sources in `c/`.
