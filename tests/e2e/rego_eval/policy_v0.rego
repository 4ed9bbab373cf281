package legacy

allow {
	input.user == "alice"
}
