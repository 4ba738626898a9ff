//! Table tests for the baseline rules.

use super::*;
