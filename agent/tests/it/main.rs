//! Integration tests against real local servers (moto for AWS, MLflow for the registry).
//! One binary, so the servers start once per `cargo test` run.
mod harness;

mod cli;
mod control_plane;
mod deploy;
mod eks;
mod faults;
mod python_target;
mod rebuild;
mod registry;
mod reliability;
mod render;
mod routes;
mod sync;
mod traceability;
