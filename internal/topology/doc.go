// Package topology turns a loaded configuration into a named, typed processing
// graph: sources (input topics), rules with their compiled steps, stores,
// internal topics and sinks. It validates the graph before anything runs,
// describes it (text, Mermaid, JSON) and runs one record through it with each
// rule's error policy, for the engine and the in-memory test driver alike.
//
// Compile is the one path from a configuration file to a Topology, used by
// every command (run, validate, describe, test, dev): config.Load checks the
// file, template declarations and each rule's template reference and
// arguments; Build then compiles the steps, binds the templates of use:
// steps and skips what the loader already rejected, so that every problem is
// raised in exactly one place and the two lists are simply joined.
package topology
