//! # vmm-gpt-model: the library against a plain model
//!
//! Model-based property tests of `vmm-gpt` alone (no original needed):
//! proptest generates bhyve-like operation sequences ([`ops`]), the runner
//! ([`run`]) applies each operation to the library, through its C surface
//! inside the userland kernel stand-in of `vmm-gpt-harness` ([`library`]), and to a
//! plain model ([`model`]: the populated regions and a map from GPA to leaf
//! PTE), and checks everything a caller can observe against the model.  On
//! a mismatch, proptest shrinks the sequence to a minimal failing one.
//!
//! The tests are in `tests/model.rs`; `PROPTEST_CASES` sets the number of
//! cases per test.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod library;
pub mod model;
pub mod ops;
pub mod run;
