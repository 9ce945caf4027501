package executor

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLanguages(t *testing.T) {
	have := func(tools ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, t := range tools {
				if t == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	assert.Equal(t, []string{"c", "c++", "java", "python", "sh"}, languages(have("gcc", "g++", "javac", "java", "python3", "sh")))
	assert.Equal(t, []string{"python", "sh"}, languages(have("java", "python3", "sh")), "java needs javac too")
	assert.Nil(t, languages(have()))
	assert.Contains(t, Languages(), "sh", "this machine has sh")
}
