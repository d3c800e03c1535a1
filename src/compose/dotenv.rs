//! `.env` and `env_file` files, as Compose reads them: `KEY=VALUE` lines,
//! `export` prefixes, `#` comments, single quotes (literal), double quotes
//! (escapes and variables) and unquoted values (variables, trailing ` #`
//! comments dropped).

use super::interpolate::interpolate;

/// One line's problem, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// The variables in file order. Variables are interpolated from the ones
/// defined above them, then from `outer` (the process environment).
pub fn parse(
    text: &str,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, LineError> {
    let mut vars: Vec<(String, Option<String>)> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let line = raw.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message: String| LineError {
            line: index + 1,
            message,
        };
        let Some((key, value)) = line.split_once('=') else {
            // A bare name takes its value from the environment, if any.
            let key = line.trim();
            if !is_name(key) {
                return Err(error(format!(
                    "unexpected character in variable name \"{key}\""
                )));
            }
            vars.push((key.to_owned(), outer(key)));
            continue;
        };
        let key = key.trim();
        if !is_name(key) {
            return Err(error(format!(
                "unexpected character in variable name \"{key}\""
            )));
        }
        let value = value.trim_start();
        let lookup = |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
                .or_else(|| outer(name))
        };
        let expand =
            |text: &str| interpolate(text, &lookup).map_err(|failure| error(failure.to_string()));
        let parsed = if let Some(body) = value.strip_prefix('\'') {
            quoted(body, '\'', &mut lines)
                .ok_or_else(|| error("unterminated single quote".into()))?
        } else if let Some(body) = value.strip_prefix('"') {
            let inner = quoted(body, '"', &mut lines)
                .ok_or_else(|| error("unterminated double quote".into()))?;
            expand(&unescape(&inner))?
        } else {
            let unquoted = match value.find(" #") {
                Some(i) => &value[..i],
                None => value,
            };
            expand(unquoted.trim_end())?
        };
        vars.push((key.to_owned(), Some(parsed)));
    }
    Ok(vars)
}

/// The text up to the closing quote, which may be on a later line; what
/// follows the quote (a comment) is dropped.
fn quoted<'a>(
    first: &str,
    quote: char,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Option<String> {
    let mut text = first.to_owned();
    loop {
        if let Some(end) = find_unescaped(&text, quote) {
            text.truncate(end);
            return Some(text);
        }
        let (_, next) = lines.next()?;
        text.push('\n');
        text += next;
    }
}

fn find_unescaped(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if c == quote && !(escaped && quote == '"') {
            return Some(i);
        }
        escaped = c == '\\' && !escaped;
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn is_name(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_laravel_and_symfony_write() {
        let outer = |name: &str| (name == "HOME").then(|| "/home/me".to_owned());
        let vars = parse(
            "# comment\nAPP_NAME=Laravel\nexport DB_PASSWORD=\"s3cret\"\nLITERAL='${HOME} $x'\n\
             EXPANDED=${HOME}/x # trailing\nQUOTED=\"a\\nb\"\nCHAINED=${APP_NAME}-app\nEMPTY=\nBARE\n",
            &outer,
        )
        .unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("APP_NAME").as_deref(), Some("Laravel"));
        assert_eq!(get("DB_PASSWORD").as_deref(), Some("s3cret"));
        assert_eq!(get("LITERAL").as_deref(), Some("${HOME} $x"));
        assert_eq!(get("EXPANDED").as_deref(), Some("/home/me/x"));
        assert_eq!(get("QUOTED").as_deref(), Some("a\nb"));
        assert_eq!(get("CHAINED").as_deref(), Some("Laravel-app"));
        assert_eq!(get("EMPTY").as_deref(), Some(""));
        assert_eq!(get("BARE"), None);
    }

    #[test]
    fn bad_lines_are_numbered() {
        let err = parse("A=1\nnot valid=2\n", &|_| None).unwrap_err();
        assert_eq!(err.line, 2);
    }
}
