//! phygital: omnichannel retail analytics on Apache DataFusion.
//!
//! The engine side of the product: configuration, the session factory with its object-store registry, table
//! discovery under a storage root, the synthetic data generator, the demo and the command line. SQL functions
//! live in [`phygital_udfs`], warehouse connectors in [`phygital_connectors`].

pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod generate;
pub mod output;
pub mod quality;
pub mod runner;
pub mod session;
pub mod storage;
pub mod sync;
pub mod table_manifest;
pub mod tables;

pub use error::{Error, Result};
