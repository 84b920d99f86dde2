//! Embedded Minimax fake (work in progress).
