//! The child-product planner: which children a build of a base product should have. It parses
//! a product's `build_rules`, lists every combination of one option per variation, keeps those
//! the rules include, and names each child's SKU and slug. It is pure, so the rules of A.11 are
//! tested here without a database; the store only writes the plan.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::checks::{attr, is_url_safe};
use super::ids::{VariationId, VariationOptionId};
use crate::error::ValidationError;

/// Most child products one build may produce. The vendor documents no limit; this one keeps a
/// product with many variations from filling the database by accident.
pub const MAX_CHILDREN: usize = 10_000;

/// What a build does with a combination no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDefault {
    /// Build it.
    Include,
    /// Skip it.
    Exclude,
}

/// A product's `build_rules`, parsed (A.11). A rule is a set of option ids; it matches a
/// combination that contains all of them. The matching rule with the most options decides; a
/// tie between an `include` and an `exclude` rule is ambiguous, and no match means the default.
/// A rule naming two options of one variation can never match, which is EP's documented
/// behaviour for such "invalid" rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRules {
    /// What happens to combinations no rule matches.
    pub default: RuleDefault,
    /// Combinations to build.
    pub include: Vec<Vec<VariationOptionId>>,
    /// Combinations to skip.
    pub exclude: Vec<Vec<VariationOptionId>>,
}

/// The error text of EP for rules that cannot decide (A.11).
pub const AMBIGUOUS_RULES: &str =
    "could not determine whether to include or exclude a child product due to ambiguous rules";

impl BuildRules {
    /// Parses the JSON form; errors name the field `data.attributes.build_rules`.
    pub fn parse(v: &Value) -> Result<Self, ValidationError> {
        let field = attr("build_rules");
        let bad = |m: String| ValidationError::new(field.clone(), m);
        let obj = v.as_object().ok_or_else(|| bad("must be an object".to_owned()))?;
        if let Some(k) =
            obj.keys().find(|k| !matches!(k.as_str(), "default" | "include" | "exclude"))
        {
            return Err(bad(format!("unknown key {k:?}")));
        }
        let default = match obj.get("default").and_then(Value::as_str) {
            Some(d) if d.eq_ignore_ascii_case("include") => RuleDefault::Include,
            Some(d) if d.eq_ignore_ascii_case("exclude") => RuleDefault::Exclude,
            Some(d) => return Err(bad(format!("default must be include or exclude (got {d:?})"))),
            None => return Err(bad("default is required".to_owned())),
        };
        let combos = |key: &str| -> Result<Vec<Vec<VariationOptionId>>, ValidationError> {
            let Some(list) = obj.get(key).filter(|l| !l.is_null()) else { return Ok(Vec::new()) };
            let list = list
                .as_array()
                .ok_or_else(|| bad(format!("{key} must be an array of arrays of option ids")))?;
            list.iter()
                .map(|combo| {
                    let ids = combo.as_array().filter(|c| !c.is_empty()).ok_or_else(|| {
                        bad(format!("{key} must hold non-empty arrays of option ids"))
                    })?;
                    ids.iter()
                        .map(|id| {
                            let s = id.as_str().unwrap_or_default();
                            VariationOptionId::parse(s).map_err(|_| {
                                bad(format!("{key}: {id} is not a valid variation option id"))
                            })
                        })
                        .collect()
                })
                .collect()
        };
        Ok(BuildRules { default, include: combos("include")?, exclude: combos("exclude")? })
    }

    /// Whether the combination of options becomes a child product.
    pub fn includes(&self, combination: &[VariationOptionId]) -> Result<bool, ValidationError> {
        let best = |rules: &[Vec<VariationOptionId>]| {
            rules
                .iter()
                .filter(|r| r.iter().all(|id| combination.contains(id)))
                .map(|r| r.iter().collect::<BTreeSet<_>>().len())
                .max()
        };
        match (best(&self.include), best(&self.exclude)) {
            (None, None) => Ok(self.default == RuleDefault::Include),
            (Some(_), None) => Ok(true),
            (None, Some(_)) => Ok(false),
            (Some(i), Some(e)) if i > e => Ok(true),
            (Some(i), Some(e)) if e > i => Ok(false),
            (Some(_), Some(_)) => Err(ValidationError::new(attr("build_rules"), AMBIGUOUS_RULES)),
        }
    }
}

/// A variation of the product being built, with its options in naming order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariationSpec {
    /// The variation.
    pub id: VariationId,
    /// Its options.
    pub options: Vec<OptionSpec>,
}

/// One option of a [`VariationSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSpec {
    /// The option.
    pub id: VariationOptionId,
    /// Its name, used in the child's SKU and slug.
    pub name: String,
}

/// One child product a build should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPlan {
    /// One option per variation, in the variations' order.
    pub options: Vec<VariationOptionId>,
    /// The options' names, in the same order.
    pub names: Vec<String>,
}

impl ChildPlan {
    /// The combination as stored with the child: option ids sorted and joined by commas, so
    /// the same combination always gives the same key whatever the variations' order.
    pub fn key(&self) -> String {
        combination_key(&self.options)
    }
}

/// Sorted ids joined by commas: how a child's combination (or a build's set of variations) is
/// stored and compared.
pub fn combination_key<T: fmt::Display + Ord>(ids: &[T]) -> String {
    let mut sorted: Vec<&T> = ids.iter().collect();
    sorted.sort();
    sorted.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// Every combination of one option per variation (the cartesian product, first variation
/// varying slowest) that `rules` include. No variations, or a variation without options,
/// gives no children.
pub fn plan_children(
    variations: &[VariationSpec],
    rules: Option<&BuildRules>,
) -> Result<Vec<ChildPlan>, ValidationError> {
    if variations.is_empty() {
        return Ok(Vec::new());
    }
    let total = variations.iter().try_fold(1usize, |n, v| n.checked_mul(v.options.len()));
    match total {
        Some(n) if n <= MAX_CHILDREN => {}
        _ => {
            return Err(ValidationError::new(
                "variations",
                format!("too many child products: the combinations exceed {MAX_CHILDREN}"),
            ))
        }
    }
    let mut combos = vec![ChildPlan { options: Vec::new(), names: Vec::new() }];
    for v in variations {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                v.options.iter().map(move |o| {
                    let mut next = c.clone();
                    next.options.push(o.id);
                    next.names.push(o.name.clone());
                    next
                })
            })
            .collect();
    }
    match rules {
        None => Ok(combos),
        Some(rules) => {
            let mut kept = Vec::with_capacity(combos.len());
            for c in combos {
                if rules.includes(&c.options)? {
                    kept.push(c);
                }
            }
            Ok(kept)
        }
    }
}

/// An option name as a slug or SKU part: trimmed, runs of whitespace turned into one `-`.
fn name_part(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join("-")
}

/// A child's slug: the parent's slug and the option names, lower case, joined by `-`. The
/// names are not transliterated: one that leaves the slug outside letters, digits, `.`, `-`
/// and `_` fails the build with EP's "slug must be URL compatible" (A.4).
pub fn child_slug(parent_slug: &str, names: &[String]) -> Result<String, ValidationError> {
    let mut slug = parent_slug.to_owned();
    for n in names {
        slug.push('-');
        slug.push_str(&name_part(n).to_lowercase());
    }
    if is_url_safe(&slug) {
        Ok(slug)
    } else {
        Err(ValidationError::new(
            attr("slug"),
            format!("slug must be URL compatible (got {slug:?})"),
        ))
    }
}

/// A child's SKU: the parent's SKU and the option names joined by `-`; none when the parent
/// has none.
pub fn child_sku(parent_sku: Option<&str>, names: &[String]) -> Option<String> {
    parent_sku.map(|sku| {
        let mut out = sku.to_owned();
        for n in names {
            out.push('-');
            out.push_str(&name_part(n));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn opt(n: u128) -> VariationOptionId {
        VariationOptionId::parse(&Uuid::from_u128(n).to_string()).unwrap()
    }

    fn rules(v: &Value) -> BuildRules {
        BuildRules::parse(v).unwrap()
    }

    /// One helper: what the rules decide for a combination of option numbers.
    fn check_rule(r: &BuildRules, combo: &[u128], expect: Result<bool, &str>) {
        let combo: Vec<_> = combo.iter().map(|n| opt(*n)).collect();
        let got = r.includes(&combo).map_err(|e| e.message);
        assert_eq!(
            got.as_ref().map_err(String::as_str),
            expect.as_ref().map_err(|e| *e),
            "{combo:?}"
        );
    }

    #[test]
    fn build_rules_pick_the_most_specific_match() {
        let id = |n: u128| opt(n).to_string();
        // EP's scenario 3: everything but large+red, except large+red+cotton.
        let r = rules(&json!({
            "default": "include",
            "exclude": [[id(1), id(2)]],
            "include": [[id(1), id(2), id(3)]],
        }));
        check_rule(&r, &[1, 2, 3], Ok(true));
        check_rule(&r, &[1, 2, 4], Ok(false));
        check_rule(&r, &[1, 5, 4], Ok(true));
        let r = rules(&json!({"default": "exclude", "include": [[id(1)]]}));
        check_rule(&r, &[1, 2], Ok(true));
        check_rule(&r, &[5, 2], Ok(false));
        // Same size on both sides: EP's ambiguity error.
        let r = rules(&json!({"default": "include", "include": [[id(1)]], "exclude": [[id(2)]]}));
        check_rule(&r, &[1, 3], Ok(true));
        check_rule(&r, &[1, 2], Err(AMBIGUOUS_RULES));
        // A rule with two options of one variation never matches.
        let r = rules(&json!({"default": "include", "exclude": [[id(1), id(2)]]}));
        check_rule(&r, &[1, 3], Ok(true));
    }

    #[test]
    fn malformed_build_rules_are_refused() {
        for bad in [
            json!("include"),
            json!({}),
            json!({"default": "sometimes"}),
            json!({"default": "include", "include": "x"}),
            json!({"default": "include", "include": [[]]}),
            json!({"default": "include", "include": [["not-an-id"]]}),
            json!({"default": "include", "extra": 1}),
        ] {
            let err = BuildRules::parse(&bad).unwrap_err();
            assert_eq!(err.field, "data.attributes.build_rules", "{bad}");
        }
    }

    fn variation(n: u128, names: &[(u128, &str)]) -> VariationSpec {
        VariationSpec {
            id: VariationId::parse(&Uuid::from_u128(n).to_string()).unwrap(),
            options: names
                .iter()
                .map(|(i, name)| OptionSpec { id: opt(*i), name: (*name).into() })
                .collect(),
        }
    }

    #[test]
    fn plans_every_combination_filtered_by_rules() {
        let size = variation(100, &[(1, "Small"), (2, "Large")]);
        let color = variation(200, &[(3, "Red"), (4, "Green"), (5, "Blue")]);
        let all = plan_children(&[size.clone(), color.clone()], None).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].names, vec!["Small", "Red"]);
        assert_eq!(all[5].names, vec!["Large", "Blue"]);
        assert_eq!(all[0].key(), combination_key(&[opt(3), opt(1)]), "key ignores order");
        let r = rules(
            &json!({"default": "include", "exclude": [[opt(2).to_string(), opt(3).to_string()]]}),
        );
        let some = plan_children(&[size.clone(), color], Some(&r)).unwrap();
        assert_eq!(some.len(), 5);
        assert!(!some.iter().any(|c| c.names == ["Large", "Red"]));
        assert!(plan_children(&[], None).unwrap().is_empty());
        assert!(plan_children(&[size, variation(300, &[])], None).unwrap().is_empty());
        let huge: Vec<_> = (0..5)
            .map(|v| variation(v, &(0..10).map(|o| (v * 100 + o, "x")).collect::<Vec<_>>()))
            .collect();
        assert!(plan_children(&huge, None).is_err(), "100,000 combinations are refused");
    }

    #[test]
    fn child_skus_and_slugs_come_from_the_option_names() {
        let names = vec!["Extra Large".to_owned(), "Red".to_owned()];
        assert_eq!(child_slug("shirt", &names).unwrap(), "shirt-extra-large-red");
        assert_eq!(child_sku(Some("SH"), &names).as_deref(), Some("SH-Extra-Large-Red"));
        assert_eq!(child_sku(None, &names), None);
        let err = child_slug("shirt", &["Größe".to_owned()]).unwrap_err();
        assert!(err.message.starts_with("slug must be URL compatible"), "{err}");
    }
}
