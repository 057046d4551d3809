"""The convex program: problem data, compilation (cached by structure), solver chain, diagnosis."""
