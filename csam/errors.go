package csam

import (
	"errors"
	"slices"
)

func joinErrors(errs []error) error { return errors.Join(errs...) }

func sortStrings(s []string) { slices.Sort(s) }
