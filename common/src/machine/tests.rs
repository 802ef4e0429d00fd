//! The machine on its own: session time, period boundaries, pending approvals.
