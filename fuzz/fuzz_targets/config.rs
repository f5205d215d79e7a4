//! config.toml as users write it: settings or an error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_agent::config::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::parse(text, "config.toml".into()) {
        let _ = config.touch("prod");
        let _ = config.profile("prod");
    }
});
