#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventhub_checkpoints_fuzz::list_xml::run(data));
