//! The bodies of the fuzz targets in `fuzz_targets/`. Each `run` panics when
//! a property breaks; the corpus replay tests of the main workspace include
//! these files with `#[path]` and run every file of `corpus/<target>/`
//! through them.

pub mod connection_string;
pub mod list_xml;
pub mod metadata_decoder;
