"""Running the loop on a Ray cluster: job submission, reachability checks, and Kubernetes."""
