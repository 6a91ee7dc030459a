"""The demand river (需求河): what members say in their groups, labelled, clustered into needs,
and answered by suppliers with products made for them (C2B)."""
