package credentials

// ReadMasterKey reads an existing master key file (in any of the forms
// LoadOrCreateMasterKey accepts) and never creates one: for tools that
// must open what is already sealed, such as ringd rotate-master-key.
func ReadMasterKey(path string) ([]byte, error) {
	return readMasterKey(path)
}
