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

/// `mfa-agent status | head -1`: once the reader has gone, the rest of the output has nowhere
/// to go, and the program ends at once and quietly, as Unix tools killed by SIGPIPE do (exit
/// 141), instead of panicking in `println!` with a backtrace. (SIGPIPE itself stays ignored,
/// so that a hang-up of the agent's socket is an error the client reports.)
pub fn exit_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
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
