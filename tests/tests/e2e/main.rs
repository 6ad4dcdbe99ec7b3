//! The end-to-end tests, in one binary: real infoshare servers on 127.0.0.1 (separate processes,
//! so they can be killed with SIGKILL) with real mutual TLS, real files and the real CLI. Each
//! module is one area; `common` starts the servers.

#[allow(dead_code)]
mod common;

mod audit;
mod auth;
mod authz;
mod cli;
mod crash;
mod durability;
mod exchange;
mod hostile;
mod lawful;
mod limits;
mod log_content;
mod migration;
mod operability;
mod policy;
mod replicas;
mod retention;
mod storage_tls;
mod telemetry;
mod workflow;
