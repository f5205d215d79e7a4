//! How errors read: one sentence, with each cause once. Many errors here (and in the
//! crates below) put their cause in their own message; printing the whole chain as well
//! would say it twice.

/// `err` and its causes, joined by ": ", skipping each cause already said.
#[must_use]
pub fn one_sentence(err: &(dyn std::error::Error + 'static)) -> String {
    let mut sentence = String::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let clause = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !sentence.contains(&clause) {
            if !sentence.is_empty() {
                sentence.push_str(": ");
            }
            sentence.push_str(&clause);
        }
        next = e.source();
    }
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_gives_is_not_repeated() {
        let io = std::io::Error::other("disk full");
        let wrapped = anyhow::Error::new(io).context("failed to save the index: disk full");
        assert_eq!(
            one_sentence(wrapped.as_ref()),
            "failed to save the index: disk full"
        );
        let plain = anyhow::Error::new(std::io::Error::other("gone")).context("failed to read x");
        assert_eq!(one_sentence(plain.as_ref()), "failed to read x: gone");
    }
}
