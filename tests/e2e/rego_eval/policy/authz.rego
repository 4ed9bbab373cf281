package authz

default allow := false

allow if {
	some role in data.bindings[input.user]
	input.action in data.roles[role]
}
