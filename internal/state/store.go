// Package state holds Veltrix's local state stores: key ranges in a Pebble
// database per task (input partition), each backed by a compacted changelog
// topic, written transactionally with the task's Kafka transaction.
package state
