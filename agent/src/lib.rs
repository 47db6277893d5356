//! Ferry deploys approved ML model versions to AWS Lambda, each frozen behind its own alias.
//!
//! The pure core takes values and returns values: [`catalog`], [`platform`], [`render`], [`spec`], [`plan`],
//! [`python_env`], [`manifest`]. The edges talk to the outside world behind small traits: [`approval`] (MLflow's
//! REST API or a release manifest), [`aws`] (Lambda, S3), [`sync`] (S3 → EFS), [`audit`], [`lock`]. [`apply`]
//! walks a plan through the edges; [`commands`] wires the CLI to all of it.
pub mod api_budget;
pub mod apply;
pub mod approval;
pub mod audit;
pub mod aws;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod efs;
pub mod eks;
pub mod evidence;
pub mod function_url;
pub mod history;
pub mod http_api;
pub mod lock;
pub mod logging;
pub use ferry_sync::manifest;
pub use ferry_sync::memory;
pub mod observe;
pub mod plan;
pub mod platform;
pub mod python_env;
pub mod rebuild;
pub mod render;
pub mod report;
pub mod routes;
pub mod runtime_management;
pub mod smoke;
pub mod spec;
pub mod stage;
pub mod sync;
