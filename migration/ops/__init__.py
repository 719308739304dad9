"""Running a migration as an operation: outcomes counted (`ledger`), what each entity's
state is (`status`), the measured gates between phases (`gates`), the record of every
phase change and reconcile run (`records`), metrics (`metrics`) and the status page
(`page`). Generic: every entity comes from the contract.
"""
