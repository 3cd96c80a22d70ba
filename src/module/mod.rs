//! The kbv3_volume module (work in progress).
