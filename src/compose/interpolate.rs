//! Compose's variable syntax, as compose-go's `template` package reads it:
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
//! `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}`, and `$$` for
//! a literal `$`. Defaults and replacements may themselves hold variables.

/// Why a value could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `${VAR:?message}` or `${VAR?message}` with the variable missing.
    Required { variable: String, message: String },
    /// `${` without its `}`, or a name Compose does not accept.
    Syntax(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Required { variable, message } if message.is_empty() => {
                write!(f, "required variable {variable} is missing a value")
            }
            Failure::Required { variable, message } => {
                write!(
                    f,
                    "required variable {variable} is missing a value: {message}"
                )
            }
            Failure::Syntax(text) => write!(f, "invalid interpolation format for \"{text}\""),
        }
    }
}

/// Replaces every variable in `text`; `lookup` gives a variable's value,
/// `None` when it is unset. Unset variables without a default become "".
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Failure> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(index) = rest.find('$') {
        out += &rest[..index];
        let after = &rest[index + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).ok_or_else(|| Failure::Syntax(text.to_owned()))?;
            out += &braced(&body[..end], text, lookup)?;
            rest = &body[end + 1..];
        } else {
            let name_len = name_length(after);
            if name_len == 0 {
                out.push('$');
                rest = after;
            } else {
                out += &lookup(&after[..name_len]).unwrap_or_default();
                rest = &after[name_len..];
            }
        }
    }
    out += rest;
    Ok(out)
}

/// The index of the `}` that closes a `${`, counting nested `${...}`.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn name_length(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(text.len(), |(i, _)| i)
}

fn braced(
    body: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Failure> {
    let name_len = name_length(body);
    if name_len == 0 {
        return Err(Failure::Syntax(whole.to_owned()));
    }
    let name = &body[..name_len];
    let operator = &body[name_len..];
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let nested = |text: &str| interpolate(text, lookup);
    let required = |message: &str| -> Result<String, Failure> {
        Err(Failure::Required {
            variable: name.to_owned(),
            message: nested(message)?,
        })
    };
    if operator.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    for (op, test) in [(":-", non_empty), ("-", set)] {
        if let Some(default) = operator.strip_prefix(op) {
            return if test {
                Ok(value.unwrap_or_default())
            } else {
                nested(default)
            };
        }
    }
    for (op, test) in [(":?", non_empty), ("?", set)] {
        if let Some(message) = operator.strip_prefix(op) {
            return if test {
                Ok(value.unwrap_or_default())
            } else {
                required(message)
            };
        }
    }
    for (op, test) in [(":+", non_empty), ("+", set)] {
        if let Some(replacement) = operator.strip_prefix(op) {
            return if test {
                nested(replacement)
            } else {
                Ok(String::new())
            };
        }
    }
    Err(Failure::Syntax(whole.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<String, Failure> {
        let lookup = |name: &str| match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("3306".to_owned()),
            _ => None,
        };
        interpolate(text, &lookup)
    }

    #[test]
    fn every_form() {
        assert_eq!(run("$SET ${SET} x${SET}y").unwrap(), "value value xvaluey");
        assert_eq!(run("${UNSET}|$UNSET").unwrap(), "|");
        assert_eq!(
            run("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}").unwrap(),
            "d d  d"
        );
        assert_eq!(run("${SET:+r} ${EMPTY:+r} ${EMPTY+r}|").unwrap(), "r  r|");
        assert_eq!(run("$$SET $$ a$").unwrap(), "$SET $ a$");
        assert_eq!(run("${UNSET:-${PORT}}:3306").unwrap(), "3306:3306");
        assert_eq!(run("${UNSET:-${ALSO:-x}}").unwrap(), "x");
    }

    #[test]
    fn required_and_syntax_errors() {
        assert_eq!(
            run("${UNSET:?set it in .env}").unwrap_err().to_string(),
            "required variable UNSET is missing a value: set it in .env"
        );
        assert!(run("${EMPTY:?x}").is_err());
        assert_eq!(run("${EMPTY?x}").unwrap(), "");
        assert!(matches!(run("${UNCLOSED"), Err(Failure::Syntax(_))));
        assert!(matches!(run("${1BAD}"), Err(Failure::Syntax(_))));
        assert!(matches!(run("${SET%x}"), Err(Failure::Syntax(_))));
    }
}
