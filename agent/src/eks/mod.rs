//! The EKS service (`--target eks`): each model's served set as one Deployment, rolled out through the Kubernetes
//! API. `served` is the frozen-versions rule, `rollout` reads a Deployment's progress, `cluster` makes the calls.
pub mod cluster;
pub mod rollout;
pub mod served;
