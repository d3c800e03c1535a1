//! CPU architectures, as nodes report them (`kubernetes.io/arch`) and images
//! provide them: one type for the stack's `targetArch`, `up --arch`,
//! `check --arch` and the registry's platform matching.

use std::fmt;

use serde::Serialize;

/// An architecture nodes have and images must provide: `arm64`, `amd64`, `arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arch {
    architecture: String,
    variant: Option<String>,
}

/// What a stack can be pinned to: the architectures the catalog's images are
/// published for.
pub(crate) const TARGETS: [&str; 2] = ["amd64", "arm64"];

impl Arch {
    pub fn amd64() -> Self {
        Self::with_variant("amd64", None)
    }

    pub fn arm64() -> Self {
        Self::with_variant("arm64", None)
    }

    /// The architecture name without its variant: the `kubernetes.io/arch` value.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// A stack's target (`targetArch:`, `up --arch`): exactly one of [`TARGETS`],
    /// since it ends up as a node selector value.
    pub fn target(text: &str) -> Result<Self, String> {
        match text {
            "amd64" => Ok(Self::amd64()),
            "arm64" => Ok(Self::arm64()),
            other => Err(format!(
                "unsupported architecture \"{other}\" (supported: {})",
                TARGETS.join(", ")
            )),
        }
    }

    /// Parses `arm64`, `arm64/v8`, `aarch64`, `x86_64`, `arm/v7`, `linux/arm64`.
    /// `arm64/v8` is plain `arm64`: v8 is the only arm64 variant that exists in practice.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let text = text.strip_prefix("linux/").unwrap_or(&text);
        let (architecture, variant) = match text.split_once('/') {
            Some((arch, variant)) => (arch, Some(variant)),
            None => (text, None),
        };
        let architecture = match architecture {
            "aarch64" => "arm64",
            "x86_64" | "x86-64" | "x64" => "amd64",
            "i386" | "i686" | "x86" => "386",
            "armhf" | "armv7" | "armv7l" => return Ok(Self::with_variant("arm", Some("v7"))),
            "armel" | "armv6" | "armv6l" => return Ok(Self::with_variant("arm", Some("v6"))),
            other => other,
        };
        let known = [
            "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "loong64", "mips64le",
        ];
        if !known.contains(&architecture) {
            return Err(format!(
                "unknown architecture \"{text}\" (expected one of amd64, arm64, arm/v7, ppc64le, s390x, riscv64)"
            ));
        }
        if let Some(variant) = variant
            && !(variant.starts_with('v') && variant[1..].parse::<u8>().is_ok())
        {
            return Err(format!(
                "unknown architecture variant \"{variant}\" in \"{text}\" (expected v6, v7, v8, ...)"
            ));
        }
        Ok(Self::with_variant(architecture, variant))
    }

    fn with_variant(architecture: &str, variant: Option<&str>) -> Self {
        let variant = match (architecture, variant) {
            ("arm64", Some("v8")) => None,
            (_, variant) => variant.map(str::to_owned),
        };
        Self {
            architecture: architecture.to_owned(),
            variant,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses a comma-separated `--arch` list, dropping duplicates.
pub(crate) fn parse_list(items: &[String]) -> Result<Vec<Arch>, String> {
    let mut arches = Vec::new();
    for item in items.iter().flat_map(|i| i.split(',')) {
        if item.trim().is_empty() {
            continue;
        }
        let arch = Arch::parse(item)?;
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    Ok(arches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(text: &str) -> Arch {
        Arch::parse(text).unwrap()
    }

    #[test]
    fn arm64_is_arm64_v8() {
        assert_eq!(arch("arm64/v8"), arch("arm64"));
        assert_eq!(arch("aarch64"), arch("arm64"));
        assert_eq!(arch("linux/arm64"), arch("arm64"));
        assert_eq!(arch("arm64/v8").to_string(), "arm64");
    }

    #[test]
    fn other_spellings_normalize() {
        assert_eq!(arch("x86_64"), arch("amd64"));
        assert_eq!(arch("AMD64"), arch("amd64"));
        assert_eq!(arch("armv7l").to_string(), "arm/v7");
    }

    #[test]
    fn unknown_architectures_are_refused() {
        assert!(Arch::parse("sparc").is_err());
        assert!(Arch::parse("arm64/eight").is_err());
        assert!(Arch::parse("").is_err());
    }

    #[test]
    fn targets_are_exactly_amd64_and_arm64() {
        assert_eq!(Arch::target("amd64"), Ok(Arch::amd64()));
        assert_eq!(Arch::target("arm64"), Ok(arch("aarch64")));
        assert_eq!(
            Arch::target("x86").unwrap_err(),
            "unsupported architecture \"x86\" (supported: amd64, arm64)"
        );
        assert!(Arch::target("arm/v7").is_err());
    }

    #[test]
    fn arch_lists_split_on_commas_and_dedupe() {
        let list = parse_list(&["arm64,amd64".into(), "arm64/v8".into()]).unwrap();
        assert_eq!(list, vec![arch("arm64"), arch("amd64")]);
        assert!(parse_list(&["arm64,bogus".into()]).is_err());
    }
}
