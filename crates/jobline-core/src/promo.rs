//! Promotion codes: the `code_generate` parameters and the shape of a generated code
//! (`shared/spec/vendor-apis.md` B.2, settled by DECISIONS.md "Effects of jobs").
//!
//! Both the HTTP edge (to answer 422 at create) and the worker (which trusts nothing it reads
//! back) parse parameters through [`GenerateParams::parse`], so the two can never disagree.
//! Randomness is the caller's: this crate does no I/O.

use crate::error::ValidationError;
use serde_json::Value;

/// Characters a generated code is made of: lower-case alphanumerics, as the vendor's examples
/// show (`aa2b-3c4d`).
pub const CODE_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Shortest `code_length`.
pub const MIN_CODE_LENGTH: usize = 8;
/// Longest `code_length`.
pub const MAX_CODE_LENGTH: usize = 16;
/// `code_length` when none is given.
pub const DEFAULT_CODE_LENGTH: usize = 8;
/// Longest `code_prefix` (not a vendor rule: it keeps codes a sane size).
pub const MAX_PREFIX_LENGTH: usize = 64;

/// The `consume_unit` values of Promotions Standard (`/v2/promotions`).
pub const STANDARD_CONSUME_UNITS: [&str; 2] = ["per_cart", "per_item"];
/// The `consume_unit` values of Rule Promotions (`/v2/rule-promotions`).
pub const RULE_CONSUME_UNITS: [&str; 2] = ["per_application", "per_checkout"];

/// Parameters of a `code_generate` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateParams {
    /// How many codes to generate (at least 1).
    pub number_of_codes: u64,
    /// Random characters per code, excluding dashes and prefix (8–16).
    pub code_length: usize,
    /// Put verbatim in front of each code.
    pub code_prefix: String,
    /// How a use of a code is counted.
    pub consume_unit: Option<String>,
    /// Uses allowed per code (`None`: unlimited; 0: unusable).
    pub max_uses_per_code: Option<u64>,
}

fn unsigned(v: &Value, field: &str) -> Result<Option<u64>, ValidationError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_u64().map(Some).ok_or_else(|| {
            ValidationError::new(field, format!("{field} must be a non-negative integer, got {n}"))
        }),
    }
}

fn string(v: &Value, field: &str) -> Result<Option<String>, ValidationError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            Err(ValidationError::new(field, format!("{field} must be a string, got {other}")))
        }
    }
}

impl GenerateParams {
    /// Validates `parameters` of a `code_generate` job; `units` are the `consume_unit` values
    /// the caller's family accepts. Field names in errors are the request's own.
    pub fn parse(parameters: &Value, units: &[&str]) -> Result<Self, ValidationError> {
        if !parameters.is_object() {
            return Err(ValidationError::new("parameters", "parameters must be an object"));
        }
        let number_of_codes = unsigned(parameters, "number_of_codes")?.ok_or_else(|| {
            ValidationError::new("number_of_codes", "number_of_codes is required")
        })?;
        if number_of_codes == 0 {
            return Err(ValidationError::new(
                "number_of_codes",
                "number_of_codes must be at least 1",
            ));
        }
        let code_length = match unsigned(parameters, "code_length")? {
            None => DEFAULT_CODE_LENGTH,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (MIN_CODE_LENGTH..=MAX_CODE_LENGTH).contains(n))
                .ok_or_else(|| {
                    ValidationError::new(
                        "code_length",
                        format!("code_length must be between {MIN_CODE_LENGTH} and {MAX_CODE_LENGTH}, got {n}"),
                    )
                })?,
        };
        let code_prefix = string(parameters, "code_prefix")?.unwrap_or_default();
        if code_prefix.chars().count() > MAX_PREFIX_LENGTH {
            return Err(ValidationError::new(
                "code_prefix",
                format!("code_prefix must be at most {MAX_PREFIX_LENGTH} characters"),
            ));
        }
        let consume_unit = string(parameters, "consume_unit")?;
        if let Some(unit) = &consume_unit {
            if !units.contains(&unit.as_str()) {
                return Err(ValidationError::new(
                    "consume_unit",
                    format!("consume_unit must be one of {}, got {unit:?}", units.join(", ")),
                ));
            }
        }
        let max_uses_per_code = unsigned(parameters, "max_uses_per_code")?;
        Ok(GenerateParams {
            number_of_codes,
            code_length,
            code_prefix,
            consume_unit,
            max_uses_per_code,
        })
    }

    /// A code from `random`, which must hold `code_length` characters of [`CODE_ALPHABET`]:
    /// the prefix verbatim, then the characters with a dash after every fourth (never a trailing
    /// one), e.g. `summer-` + `aa2b3c4d` → `summer-aa2b-3c4d`.
    pub fn code(&self, random: &str) -> String {
        let mut out = String::with_capacity(self.code_prefix.len() + random.len() * 5 / 4);
        out.push_str(&self.code_prefix);
        for (i, c) in random.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(parameters: &Value, expect: Result<(u64, usize, &str), &str>) {
        let got = GenerateParams::parse(parameters, &STANDARD_CONSUME_UNITS)
            .map(|p| (p.number_of_codes, p.code_length, p.code_prefix))
            .map_err(|e| e.field);
        let expect = expect.map(|(n, l, p)| (n, l, p.to_owned())).map_err(str::to_owned);
        assert_eq!(got, expect, "{parameters}");
    }

    #[test]
    fn parameters_are_checked_field_by_field() {
        check(&json!({"number_of_codes": 5}), Ok((5, 8, "")));
        check(
            &json!({"number_of_codes": 5, "code_length": 16, "code_prefix": "x-"}),
            Ok((5, 16, "x-")),
        );
        check(
            &json!({"number_of_codes": 1, "consume_unit": "per_item", "max_uses_per_code": 0}),
            Ok((1, 8, "")),
        );
        check(&json!({}), Err("number_of_codes"));
        check(&json!({"number_of_codes": 0}), Err("number_of_codes"));
        check(&json!({"number_of_codes": "5"}), Err("number_of_codes"));
        check(&json!({"number_of_codes": 5, "code_length": 7}), Err("code_length"));
        check(&json!({"number_of_codes": 5, "code_length": 17}), Err("code_length"));
        check(&json!({"number_of_codes": 5, "consume_unit": "per_checkout"}), Err("consume_unit"));
        check(&json!({"number_of_codes": 5, "max_uses_per_code": -1}), Err("max_uses_per_code"));
        check(&json!({"number_of_codes": 5, "code_prefix": 3}), Err("code_prefix"));
        check(&json!([1]), Err("parameters"));
    }

    #[test]
    fn codes_get_a_dash_after_every_four_characters() {
        let p = GenerateParams::parse(&json!({"number_of_codes": 1}), &[]).unwrap();
        assert_eq!(p.code("aa2b3c4d"), "aa2b-3c4d");
        assert_eq!(p.code("abcdefghij"), "abcd-efgh-ij");
        let p = GenerateParams { code_prefix: "summer-".into(), ..p };
        assert_eq!(p.code("abcdefghijklmnop"), "summer-abcd-efgh-ijkl-mnop");
    }
}
