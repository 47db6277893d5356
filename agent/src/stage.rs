//! A stage alias's description, which Ferry writes on every move: `<model> stage <stage> -> v<N> run <run id>`.
//! It is what lets a later run tell a move Ferry made (whose audit record a crash or a lost answer kept from being
//! written) from one made by hand, and name the run that made it.

/// Lambda's limit on an alias description.
const MAX_DESCRIPTION: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDescription {
    pub model: String,
    pub stage: String,
    /// The registry version the stage was moved to.
    pub version: String,
    /// The run that moved it (absent when the description had to be shortened, or was written before runs).
    pub run_id: Option<String>,
}

impl StageDescription {
    pub fn render(&self) -> String {
        let base = format!("{} stage {} -> v{}", self.model, self.stage, self.version);
        match &self.run_id {
            Some(run) if base.len() + 5 + run.len() <= MAX_DESCRIPTION => {
                format!("{base} run {run}")
            }
            _ => base,
        }
    }

    /// The description of a move of `stage` for `model`; `None` when it is not one Ferry wrote for them.
    pub fn parse(description: &str, model: &str, stage: &str) -> Option<StageDescription> {
        let rest = description.strip_prefix(&format!("{model} stage {stage} -> v"))?;
        let (version, run_id) = match rest.split_once(" run ") {
            Some((v, run)) if !run.is_empty() && !run.contains(' ') => (v, Some(run.to_string())),
            Some(_) => return None,
            None => (rest, None),
        };
        (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())).then(|| {
            StageDescription {
                model: model.into(),
                stage: stage.into(),
                version: version.into(),
                run_id,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(model: &str, stage: &str, run: Option<&str>) -> StageDescription {
        StageDescription {
            model: model.into(),
            stage: stage.into(),
            version: "12".into(),
            run_id: run.map(str::to_string),
        }
    }

    #[test]
    fn a_stage_description_round_trips() {
        let d = moved(
            "risk-score",
            "production",
            Some("20261126T081500.123Z-4411-9f3c2a1b"),
        );
        assert_eq!(
            d.render(),
            "risk-score stage production -> v12 run 20261126T081500.123Z-4411-9f3c2a1b"
        );
        assert_eq!(
            StageDescription::parse(&d.render(), "risk-score", "production"),
            Some(d)
        );
    }

    #[test]
    fn the_longest_model_key_and_alias_name_keep_the_run_within_lambdas_limit() {
        // Catalog keys are at most 64 characters, Lambda alias names 128.
        let d = moved(
            &"m".repeat(64),
            &"s".repeat(128),
            Some("20261126T081500.123Z-4411-9f3c2a1b"),
        );
        assert!(d.render().len() <= MAX_DESCRIPTION, "{}", d.render().len());
        assert_eq!(
            StageDescription::parse(&d.render(), &d.model, &d.stage),
            Some(d)
        );
        // A longer run id than Ferry makes is left out rather than cut.
        let long = moved(&"m".repeat(64), &"s".repeat(128), Some(&"r".repeat(60)));
        let parsed = StageDescription::parse(&long.render(), &long.model, &long.stage).unwrap();
        assert_eq!((parsed.version.as_str(), parsed.run_id), ("12", None));
    }

    #[test]
    fn descriptions_ferry_did_not_write_are_not_read_as_moves() {
        for other in [
            "production",
            "",
            "risk-score stage production -> v",
            "risk-score stage production -> vlatest",
            "risk-score stage staging -> v3",
            "other stage production -> v3",
            "risk-score stage production -> v3 run ",
            "risk-score stage production -> v3 by hand",
        ] {
            assert_eq!(
                StageDescription::parse(other, "risk-score", "production"),
                None,
                "{other:?}"
            );
        }
    }
}
