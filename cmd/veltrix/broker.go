package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/veltrix/veltrix/broker"
)

func newBrokerCmd() *cobra.Command {
	var listen, dataDir string
	var partitions int
	var topics []string
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run an embedded Kafka-protocol broker for development, demos and tests",
		Long: `Runs an embedded single-node Kafka-protocol broker (kfake) until SIGINT or SIGTERM.

It is for development, demos and tests only — not for production, which runs on
Apache Kafka, Redpanda or any Kafka-protocol cluster. Topics are created
automatically on first use with --partitions partitions. With --data-dir the
log and consumer group state survive a restart, a kill -9 included: at start
the broker aborts the transactions that a crash left open, and logs one line
for each. The broker never compacts topics on its own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := []broker.Option{broker.WithListen(listen), broker.WithPartitions(partitions), broker.WithTopics(topics...),
				broker.WithLogger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))}
			if dataDir != "" {
				opts = append(opts, broker.WithDataDir(dataDir))
			}
			b, err := broker.Start(opts...)
			if err != nil {
				return err
			}
			defer b.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "veltrix broker: listening on %s (development broker, not for production)\n", b.Addr())
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "veltrix broker: shutting down")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "address to listen on (port 0 picks a free port)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "directory to persist topics and groups in (default: memory only)")
	cmd.Flags().IntVar(&partitions, "partitions", 6, "partitions of auto-created topics")
	cmd.Flags().StringSliceVar(&topics, "topics", nil, "topics to create at start (comma-separated)")
	return cmd
}
