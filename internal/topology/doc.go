// Package topology turns a loaded configuration into a named, typed processing
// graph: sources (input topics), rules with their compiled steps, stores,
// internal topics and sinks. It validates the graph before anything runs,
// describes it (text, Mermaid, JSON) and runs one record through it with each
// rule's error policy, for the engine and the in-memory test driver alike.
package topology
