"""The grading folder (an nbgrader course root of its own), its gradebook, statuses and late
policy.
"""
