//! Fleet files and inventory (work in progress).
