global using RAllocator.Generators.Shared;
