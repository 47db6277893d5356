//! How far a Deployment's rollout is, read from its status as `kubectl rollout status` reads it: the controller must
//! have seen the latest spec (observedGeneration), every replica must be updated and available, and no old replica
//! left; a `Progressing` condition with reason `ProgressDeadlineExceeded` is a failed rollout.
use k8s_openapi::api::apps::v1::Deployment;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Done,
    /// Still going, and what it waits for (shown as progress).
    Waiting(String),
    /// The controller gave up: its condition's message.
    Failed(String),
}

pub fn state(deployment: &Deployment) -> Rollout {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let Some(status) = &deployment.status else {
        return Rollout::Waiting("waiting for the controller to see the new spec".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("waiting for the controller to see the new spec".into());
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Rollout::Failed(
            c.message
                .clone()
                .unwrap_or_else(|| "progress deadline exceeded".into()),
        );
    }
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        Rollout::Waiting(format!("{updated} of {wanted} new replicas updated"))
    } else if replicas > updated {
        Rollout::Waiting(format!(
            "{} old replica(s) pending termination",
            replicas - updated
        ))
    } else if available < updated {
        Rollout::Waiting(format!("{available} of {updated} new replicas available"))
    } else {
        Rollout::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(json: serde_json::Value) -> Deployment {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_rollout_is_done_only_when_every_replica_is_new_and_available() {
        let d = |observed: i64, updated: i32, replicas: i32, available: i32| {
            state(&deployment(serde_json::json!({
                "metadata": {"name": "ferry-m", "generation": 3},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": replicas,
                           "availableReplicas": available}
            })))
        };
        assert_eq!(
            d(2, 2, 2, 2),
            Rollout::Waiting("waiting for the controller to see the new spec".into())
        );
        assert_eq!(
            d(3, 1, 3, 2),
            Rollout::Waiting("1 of 2 new replicas updated".into())
        );
        assert_eq!(
            d(3, 2, 3, 2),
            Rollout::Waiting("1 old replica(s) pending termination".into())
        );
        assert_eq!(
            d(3, 2, 2, 1),
            Rollout::Waiting("1 of 2 new replicas available".into())
        );
        assert_eq!(d(3, 2, 2, 2), Rollout::Done);
    }

    #[test]
    fn an_exceeded_progress_deadline_is_a_failure_with_the_controllers_message() {
        let d = deployment(serde_json::json!({
            "metadata": {"name": "ferry-m", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3, "availableReplicas": 2,
                       "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                       "message": "ReplicaSet \"ferry-m-5d4\" has timed out progressing."}]}
        }));
        assert_eq!(
            state(&d),
            Rollout::Failed("ReplicaSet \"ferry-m-5d4\" has timed out progressing.".into())
        );
    }
}
