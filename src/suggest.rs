//! "Did you mean": the closest of the names there are to one that is not, for the errors
//! that say a profile or a seed does not exist.

/// The name in `names` closest to `wanted`, if one is close enough to be a likely typo (a
/// Jaro-Winkler similarity of 0.8 or more, the threshold clap uses for its suggestions).
#[must_use]
pub(crate) fn closest<'a>(
    wanted: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    names
        .into_iter()
        .map(|name| (strsim::jaro_winkler(wanted, name), name))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name.to_owned())
}

/// `" (did you mean \"NAME\"?)"`, or nothing: for an error message.
#[must_use]
pub(crate) fn did_you_mean(suggestion: Option<&String>) -> String {
    suggestion.map_or_else(String::new, |name| format!(" (did you mean {name:?}?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_name_and_a_stranger_finds_none() {
        let names = ["work", "prod-admin", "staging"];
        assert_eq!(closest("wrok", names).as_deref(), Some("work"));
        assert_eq!(closest("prod-admn", names).as_deref(), Some("prod-admin"));
        assert_eq!(closest("billing", names), None);
        assert_eq!(
            did_you_mean(Some(&"work".into())),
            " (did you mean \"work\"?)"
        );
        assert_eq!(did_you_mean(None), "");
    }
}
