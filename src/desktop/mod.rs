//! The desktop side: notifications (every platform notify-rust serves) and, behind the
//! `tray` feature on Linux, the tray icon.

pub mod notify;
pub mod pinentry;
#[cfg(all(target_os = "linux", feature = "tray"))]
pub mod tray;

/// Agent messages are lower-case clauses ("touch your security key (main) to approve
/// base"); as a headline or a notification title they start with a capital.
#[must_use]
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_become_sentences() {
        assert_eq!(
            super::sentence("touch your security key (main) to approve base"),
            "Touch your security key (main) to approve base"
        );
        assert_eq!(super::sentence(""), "");
    }
}
