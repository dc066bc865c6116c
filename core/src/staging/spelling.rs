//! The one spelling of each named value that every binding, the CLI and the stores share.
//!
//! [`spelled!`] gives a plain enum `ALL`, `as_str`, `parse` (an `InvalidArgument` naming the
//! accepted spellings), [`std::fmt::Display`] and [`std::str::FromStr`]. Python, Node, C and
//! the CLI accept and print exactly these lower-case spellings.

/// Implement the spelling of a fieldless enum: `spelled!(Type, "what it is", { Variant =>
/// "spelling", … })`.
macro_rules! spelled {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The value's spelling, the one every binding and the CLI accept and print.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }

            /// The value spelled `text` ([`Self::as_str`]); `InvalidArgument` naming the
            /// accepted spellings otherwise.
            pub fn parse(text: &str) -> $crate::error::Result<$ty> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| $crate::error::Error::InvalidArgument {
                        what: $what,
                        reason: format!(
                            "{text:?} is not {}",
                            $crate::staging::spelling::one_of(
                                &$ty::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()
                            )
                        ),
                    })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::error::Error;

            fn from_str(text: &str) -> $crate::error::Result<$ty> {
                $ty::parse(text)
            }
        }
    };
}

pub(crate) use spelled;

/// `a, b or c`.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::one_of;
    use crate::staging::{MockCall, Scope, Visibility};

    #[test]
    fn every_spelling_parses_back() {
        for c in MockCall::ALL {
            assert_eq!(MockCall::parse(c.as_str()).unwrap(), *c);
            assert_eq!(c.to_string(), c.as_str());
        }
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
        }
        for v in Visibility::ALL {
            assert_eq!(Visibility::parse(v.as_str()).unwrap(), *v);
        }
        assert_eq!(Scope::App.as_str(), "app");
        assert_eq!(Visibility::Private.as_str(), "private");
    }

    #[test]
    fn a_wrong_spelling_names_the_accepted_ones() {
        let e = Scope::parse("App").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
        assert!(
            e.to_string().contains("\"App\" is not app or staging"),
            "{e}"
        );
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }
}
