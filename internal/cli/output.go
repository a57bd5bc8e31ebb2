package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// textOrJSON checks --output of the commands that print text or JSON.
func textOrJSON(output string) error {
	if output != "text" && output != "json" {
		return usageError(fmt.Errorf("--output %q: want text or json", output))
	}
	return nil
}

func validFormat(f string, formats []string) bool {
	for _, x := range formats {
		if f == x {
			return true
		}
	}
	return false
}

// writeTo writes to file, or to out when file is empty. A file is
// written to a temporary name and renamed, so a failed scan never leaves
// half a report where a pipeline expects a whole one.
func writeTo(out io.Writer, file string, write func(io.Writer) error) error {
	if file == "" {
		return write(out)
	}
	tmp, err := os.CreateTemp(dirOf(file), ".socle-report-*")
	if err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), file)
}
