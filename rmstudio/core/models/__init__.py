"""Language models: loading (safely), generating responses, filling a project with pairs."""
