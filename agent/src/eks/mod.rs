//! The EKS service (`--target eks`): each model's served set as one Deployment, rolled out through the Kubernetes
//! API. `served` is the frozen-versions rule, `rollout` reads a Deployment's progress, `check` compares a Deployment
//! with its records, `cluster` makes the calls.
pub mod check;
pub mod cluster;
pub mod rollout;
pub mod served;
